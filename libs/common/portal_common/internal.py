"""Service-to-service calls under `/internal/`, never routed by the gateway.

A caller proves it is one of the portal's services with the shared secret in
`X-Portal-Internal`; the comparison is constant-time.
"""

INTERNAL_HEADER = "x-portal-internal"


def internal_headers(token: str) -> dict[str, str]:
    return {INTERNAL_HEADER: token}
