"""Front doors: each one speaks a protocol to its clients and asks the core for the rest.
A new front door is a new subpackage here; none imports another."""
