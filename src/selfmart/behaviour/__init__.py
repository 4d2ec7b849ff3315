"""The business log: customers' shopping and payment behaviour as terminals report it, in
signed batches (docs/terminal-protocol.md §5i), kept in a form analytics reads."""
