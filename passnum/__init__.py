"""Pass numérique: open platform for France's digital-inclusion vouchers."""
