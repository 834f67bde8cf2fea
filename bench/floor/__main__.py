"""The engine's floor: as many dynamic resources as homefleet declares for the same fleet
(one per image template and host, one per CT, each CT taking its template's output as input),
whose provider does nothing: create, read, update and delete return at once.

Config: `floor:hosts`, `floor:apps` (per host), `floor:memory` ({ct name: MB}, the one-app update).
"""

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult


class Nothing(ResourceProvider):
    def create(self, props):
        return CreateResult(id_=props["name"], outs=props)

    def diff(self, _id, olds, news):
        changed = [k for k in news if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[k for k in changed if k == "name"])

    def update(self, _id, _olds, news):
        return UpdateResult(outs=news)

    def read(self, id_, props):
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id, _props):
        pass


class Trivial(Resource):
    def __init__(self, name, props, opts=None):
        super().__init__(Nothing(), name, {"name": name, **props}, opts)


config = pulumi.Config("floor")
hosts, apps = config.require_int("hosts"), config.require_int("apps")
memory = config.get_object("memory") or {}
for h in range(hosts):
    for a in range(apps):
        template = Trivial(f"pve{h + 1}-image{a + 1}", {"image": f"app{a + 1}:1", "archive": None})
        name = f"pve{h + 1}-app{a + 1}"
        Trivial(name, {"template": template.name, "memory": memory.get(name, 256)})
