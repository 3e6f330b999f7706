"""Test helper: create an Iceberg table partitioned by identity(ds) with plain pyiceberg and fill it.

Tests write their inputs this way, independently of the engine code under test.
"""
import pyarrow as pa


def create_ds_table(cat, name: str, data: pa.Table) -> None:
    from pyiceberg.transforms import IdentityTransform

    namespace = name.rsplit(".", 1)[0]
    if (namespace,) not in cat.list_namespaces():
        cat.create_namespace(namespace)
    table = cat.create_table(name, schema=data.schema)
    with table.update_spec() as spec:
        spec.add_field("ds", IdentityTransform(), "ds")
    table.append(data)
