"""A mapping constructor for strict YAML loaders: duplicate keys and `{{x}}`-style keys are errors.

Merge keys (`<<: *anchor`) are allowed and flattened as PyYAML's SafeLoader does.
"""

import yaml


def construct_unique_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (dict, list)):  # `{{x}}` parses as a mapping used as a key
            raise yaml.constructor.ConstructorError(None, None, "found unhashable key (a mapping or list used as a "
                                                    "key; quote the text if it is a name)", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
