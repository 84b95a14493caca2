"""A workshop's defaults, apart from the seat records so `kfbox --help` names them without
loading the engines."""

DEFAULT_NAME = "class"
DEFAULT_BASE_PORT = 18000
