"""The Wyoming front door: one handler per connection over bounded event reading, admission
(allow-list, connection cap, idle timeout), the `info` answer and mDNS discovery."""
