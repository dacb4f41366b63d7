/* The redemption desk (templates/www/desk/desk.html), two progressive enhancements; the page works without them.

   1. « Scanner le QR code »: opens the camera (the one facing away from the screen when there is a choice),
      decodes with the browser's BarcodeDetector when it reads QR codes, otherwise with jsQR (vendored in
      vendor/jsqr/, loaded only when needed). A decoded voucher QR code is put in the code field and the
      « Vérifier » form is submitted. Typing the code stays the alternative; the state of the camera is announced
      in the live region #scanner-etat; « Arrêter la caméra » stops it. Nothing scanned leaves this page except
      through the form (POST).
   2. « Encaisser »: choosing a service sets the number of vouchers to that service's maximum and disables the
      numbers above it (the server applies the same default and refuses more). */
(function () {
  "use strict";

  var box = document.getElementById("scanner");
  var form = document.getElementById("form-verifier");
  var field = form ? form.querySelector("[name=code]") : null;
  var media = navigator.mediaDevices;
  if (!box || !form || !field || !media || typeof media.getUserMedia !== "function") {
    return; // no camera API (or not a secure context): the typed code only
  }
  var start = document.getElementById("scanner-demarrer");
  var stopButton = document.getElementById("scanner-arreter");
  var view = document.getElementById("scanner-camera");
  var video = document.getElementById("scanner-video");
  var status = document.getElementById("scanner-etat");
  var stream = null;
  var timer = null;
  var canvas = null;
  var context = null;
  var lastSaid = "";
  var FRAME_DELAY_MS = 120;
  var MAX_SIDE = 800; // frames are scaled down to this for jsQR: enough for a QR code held in front of the camera

  function say(text) {
    lastSaid = text;
    status.textContent = text;
  }

  // A voucher's QR code carries "PN1.<code>.<key>.<signature>"; a typed code has 13 characters (dashes apart).
  function looksLikeVoucher(text) {
    var compact = text.replace(/[\s-]/g, "");
    return /^PN1\./i.test(text) || /^[0-9A-Za-z]{13}$/.test(compact);
  }

  function loadJsQR() {
    return new Promise(function (resolve, reject) {
      if (typeof window.jsQR === "function") {
        resolve(decodeWithJsQR);
        return;
      }
      var script = document.createElement("script");
      script.src = box.getAttribute("data-decoder");
      script.onload = function () {
        if (typeof window.jsQR === "function") {
          resolve(decodeWithJsQR);
        } else {
          reject(new Error("decoder"));
        }
      };
      script.onerror = function () {
        reject(new Error("decoder"));
      };
      document.head.appendChild(script);
    });
  }

  function decodeWithJsQR() {
    var width = video.videoWidth;
    var height = video.videoHeight;
    if (!width || !height) {
      return Promise.resolve(null);
    }
    var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    var w = Math.round(width * scale);
    var h = Math.round(height * scale);
    if (!canvas) {
      canvas = document.createElement("canvas");
      context = canvas.getContext("2d", { willReadFrequently: true });
    }
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    context.drawImage(video, 0, 0, w, h);
    var found = window.jsQR(context.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "dontInvert" });
    return Promise.resolve(found && found.data ? found.data : null);
  }

  // The decoder: the browser's own when it reads QR codes, jsQR otherwise.
  function decoder() {
    if (!("BarcodeDetector" in window) || typeof window.BarcodeDetector.getSupportedFormats !== "function") {
      return loadJsQR();
    }
    return window.BarcodeDetector.getSupportedFormats()
      .then(function (formats) {
        if (formats.indexOf("qr_code") === -1) {
          return loadJsQR();
        }
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return function () {
          if (video.readyState < 2) {
            return Promise.resolve(null);
          }
          return detector.detect(video).then(function (codes) {
            return codes.length ? codes[0].rawValue : null;
          });
        };
      })
      .catch(loadJsQR);
  }

  function release() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    video.srcObject = null;
    view.hidden = true;
    start.hidden = false;
    start.disabled = false;
  }

  function stop(message, focusStart) {
    var hadFocus = view.contains(document.activeElement);
    release();
    if (message) {
      say(message);
    }
    if (focusStart || hadFocus) {
      start.focus();
    }
  }

  function found(text) {
    release();
    say("QR code lu. Vérification du chèque…");
    field.value = text;
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function scan(decode) {
    if (!stream) {
      return;
    }
    decode().then(
      function (text) {
        if (!stream) {
          return;
        }
        text = (text || "").trim();
        if (text && looksLikeVoucher(text)) {
          found(text);
          return;
        }
        if (text) {
          var notVoucher = "Ce QR code n’est pas celui d’un chèque du pass numérique. Présentez le QR code du chèque.";
          if (lastSaid !== notVoucher) {
            say(notVoucher);
          }
        }
        timer = setTimeout(function () {
          scan(decode);
        }, FRAME_DELAY_MS);
      },
      function () {
        if (stream) {
          timer = setTimeout(function () {
            scan(decode);
          }, FRAME_DELAY_MS);
        }
      }
    );
  }

  function failure(error) {
    var name = error && error.name;
    if (error && error.message === "decoder") {
      return "Le lecteur de QR code n’a pas pu être chargé : saisissez le code du chèque.";
    }
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "L’accès à la caméra a été refusé. Autorisez-le dans les réglages du navigateur, ou saisissez le code du chèque.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "Aucune caméra n’a été trouvée : saisissez le code du chèque.";
    }
    if (name === "NotReadableError") {
      return "La caméra est déjà utilisée par une autre application : fermez-la, ou saisissez le code du chèque.";
    }
    return "La caméra n’a pas pu être ouverte : saisissez le code du chèque.";
  }

  start.addEventListener("click", function () {
    if (stream) {
      return;
    }
    start.disabled = true;
    say("Ouverture de la caméra…");
    decoder()
      .then(function (decode) {
        return media
          .getUserMedia({ audio: false, video: { facingMode: { ideal: "environment" } } })
          .then(function (opened) {
            stream = opened;
            video.srcObject = opened;
            view.hidden = false;
            start.hidden = true;
            stopButton.focus();
            return video.play().then(function () {
              say("Caméra ouverte : placez le QR code du chèque face à la caméra.");
              scan(decode);
            });
          });
      })
      .catch(function (error) {
        stop(failure(error), true);
      });
  });

  stopButton.addEventListener("click", function () {
    stop("Caméra arrêtée. Vous pouvez saisir le code du chèque.", true);
  });

  form.addEventListener("submit", function () {
    release(); // a typed code: the camera is no longer needed
  });
  window.addEventListener("pagehide", release);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && stream) {
      stop("Caméra arrêtée.", false);
    }
  });

  box.hidden = false;
})();

(function () {
  "use strict";

  var select = document.querySelector("select[data-desk-count]");
  var form = select ? select.form : null;
  var maxima = form ? form.querySelector("[name=maxima]") : null;
  if (!select || !maxima) {
    return;
  }
  var limits = {};
  maxima.value.split(";").forEach(function (part) {
    var pair = part.split("=");
    if (pair.length === 2 && /^\d+$/.test(pair[1])) {
      limits[pair[0]] = parseInt(pair[1], 10);
    }
  });

  function apply(service, setValue) {
    var max = limits[service];
    if (!max) {
      return;
    }
    Array.prototype.forEach.call(select.options, function (option) {
      option.disabled = option.value !== "" && parseInt(option.value, 10) > max;
    });
    if (setValue) {
      select.value = String(max);
    }
  }

  var radios = form.querySelectorAll("input[type=radio][name=service]");
  Array.prototype.forEach.call(radios, function (radio) {
    radio.addEventListener("change", function () {
      if (radio.checked) {
        apply(radio.value, true);
      }
    });
  });
  var checked = form.querySelector("input[type=radio][name=service]:checked");
  if (checked) {
    apply(checked.value, select.value === "");
  }
})();
