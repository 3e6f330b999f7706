"""Helpers shared by the DSL modules."""
import sys

ORIGIN_ATTR = "_chronon_module"


def stamp_origin(obj, depth: int = 2):
    """Remember which module called the DSL constructor, so compile names an object only where it is defined."""
    try:
        setattr(obj, ORIGIN_ATTR, sys._getframe(depth).f_globals.get("__name__"))
    except ValueError:  # no caller frame
        pass
    return obj
