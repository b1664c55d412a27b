"""Signed identity assertions: only the gateway's key makes ones services accept."""

import base64
import json
import time
from uuid import uuid4

from portal_common.identity import (
    Identity,
    IdentitySigner,
    IdentityVerifier,
    generate_keypair,
)

PRIVATE, PUBLIC = generate_keypair()
OTHER_PRIVATE, _ = generate_keypair()


def test_a_signed_identity_round_trips():
    identity = Identity(user_id=7, is_staff=False, client_id=uuid4(), token_hash="ab" * 32, address="10.0.0.1")
    assertion = IdentitySigner(PRIVATE).sign(identity, method="GET", path="/api/clients/")

    assert IdentityVerifier(PUBLIC).verify(assertion, method="GET", path="/api/clients/") == identity


def test_an_assertion_signed_with_another_key_is_refused():
    forged = IdentitySigner(OTHER_PRIVATE).sign(Identity(user_id=1, is_staff=True), method="GET", path="/api/x/")

    assert IdentityVerifier(PUBLIC).verify(forged, method="GET", path="/api/x/") is None


def test_a_tampered_assertion_is_refused():
    assertion = IdentitySigner(PRIVATE).sign(Identity(user_id=2), method="GET", path="/api/x/")
    payload, signature = assertion.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["staff"] = True
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    assert IdentityVerifier(PUBLIC).verify(f"{altered}.{signature}", method="GET", path="/api/x/") is None


def test_an_assertion_is_bound_to_its_method_path_and_lifetime():
    signer, verifier = IdentitySigner(PRIVATE), IdentityVerifier(PUBLIC)
    assertion = signer.sign(Identity(user_id=3), method="GET", path="/api/a/")

    assert verifier.verify(assertion, method="DELETE", path="/api/a/") is None
    assert verifier.verify(assertion, method="GET", path="/api/b/") is None
    assert verifier.verify(assertion, method="GET", path="/api/a/", now=time.time() + 3600) is None


def test_garbage_is_refused_without_raising():
    verifier = IdentityVerifier(PUBLIC)

    for junk in ["", "abc", "a.b.c", "!!!.???", "eyJ9.e30"]:
        assert verifier.verify(junk, method="GET", path="/") is None
