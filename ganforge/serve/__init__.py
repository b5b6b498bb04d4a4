"""`ganforge serve`: a local page to explore trained generators (see server.py)."""
from .recipe import read_recipe, regenerate
from .server import ExplorerServer, serve

__all__ = ["ExplorerServer", "read_recipe", "regenerate", "serve"]
