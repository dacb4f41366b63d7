"""The JSON API (/api/v1/) for the software of distributors and places: check and redeem vouchers, undo a redemption,
list receipts, hand out a booklet and suggest places. Same services, same refusals and same stable codes as the
pages (passnum.vouchers.redemption, passnum.vouchers.handout); every error is an RFC 9457 problem document.
See docs/api.md."""
