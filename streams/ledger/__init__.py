"""Pure builders of NetSuite record bodies for each POS event family, and the flows that
post them in order (a refund after its sale, a fulfilment after its order).

Builders take decoded events plus resolved NetSuite ids and return JSON-ready dicts
(Decimals stay Decimal: the client writes them as exact JSON numbers). Flows take a
``ReliableClient`` and are the only code here that does I/O.
"""
