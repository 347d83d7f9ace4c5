"""The splitnic NIC in Amaranth."""
