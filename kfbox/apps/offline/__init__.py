"""`kfbox bundle` for the lite engine: one archive, written on a networked machine, that takes a
fresh machine of the same OS and architecture to a certified sandbox with no network at all."""
