"""How a reconciler says that it could not finish: the exception type is the retry policy.

- `BadInput`: the Kubernetes object itself is wrong (malformed annotation, selector, CIDR).
  Retrying cannot help; the key is a failed sync at once, until the object changes.
- `NotReady`: something it depends on does not exist yet (the namespace's project, a
  service's VIP). Retried with backoff; the dependency's own sync usually fixes it.
Anything else is treated as transient (Contrail unavailable, a conflict) and retried with
backoff; after `max_attempts` the key is also recorded as a failed sync but keeps retrying.
"""


class BadInput(Exception):
    """The object cannot be translated as it is; the message tells the user what to fix."""


class NotReady(Exception):
    """A dependency is missing for now; try again later."""
