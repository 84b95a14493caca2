"""The offline bundle's format: its manifest, its archive and the machine it targets; read by
the lite engine's installer, written by `kfbox bundle` (kfbox.apps.offline)."""
