"""Which objects another resource of this `up` holds, so that a Delete releases an object taken over.

A rename (an entry's `name`, a team's, a resource's name in any program) gives a resource a new URN. The
engine creates the new resource, which takes over the existing object (adopted, or carried on with as its
own), and deletes the old resource at the end of the run: that Delete must not delete the object. One
plugin process serves the whole `up`, and before any Delete of the run it has served the Create of every
new resource and the Diff of every other declared one (a resource made by an earlier run that failed
before its deletes). Both note the object they hold, with their resource's name (`resource_name`, in every
resource's inputs and outputs); a Delete then releases (leaves on the proxy) an object a resource of
another name noted, and deletes it otherwise: a forced replacement deletes first, after its own Diff.
A Diff that answers a replacement notes nothing (the object is deleted and made again, or the new one has
another id). Destroy and refresh run no Create or Diff: a destroy deletes everything.

A resource from before `resource_name` existed has none in its outputs (None here): two such resources
with one object are told apart from nothing, and the old one's Delete deletes, as it did.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional

NAME = "resource_name"
_lock = threading.Lock()
_held: dict[tuple[str, str], set[Optional[str]]] = {}  # (resource kind, id) -> names of the holders


def note_held(kind: str, id_: str, outputs: Mapping[str, Any]) -> None:
    """The resource with these outputs (a Create's, or the state's that its Diff saw) holds this object."""
    with _lock:
        _held.setdefault((kind, id_), set()).add(outputs.get(NAME))


def held_by_another(kind: str, id_: str, outputs: Mapping[str, Any]) -> bool:
    """True when a resource other than the one with these outputs holds the object in this run."""
    with _lock:
        return bool(_held.get((kind, id_), set()) - {outputs.get(NAME)})
