"""KumoMTA's HTTP inject API (`POST /api/inject/v1`): from a request to spooled messages.

`InjectService` is the entry point; the HTTP route (mta/http) calls `inject` and maps
`InjectError` to its status (400/422) and `mta.replies.TransientError` to 503.
"""

from mta.inject.errors import InjectError
from mta.inject.service import InjectService

__all__ = ["InjectError", "InjectService"]
