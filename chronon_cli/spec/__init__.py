"""The compiled model (``ttypes``), its JSON codec and derived names. Engine-free."""
from chronon_cli.spec import ttypes
from chronon_cli.spec.codec import FORMAT_VERSION, from_json, to_json, to_json_dict, from_json_dict

__all__ = ["ttypes", "FORMAT_VERSION", "to_json", "from_json", "to_json_dict", "from_json_dict"]
