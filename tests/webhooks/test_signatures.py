from sandbox.signing import sign_body
from webhooks.apis import is_valid_handshake, is_valid_signature


def test_signature_is_over_the_raw_escaped_bytes():
    body = b'{"text":"\\u00e4\\u00f6\\u00e5 \\/ @"}'
    header = sign_body(raw_body=body, app_secret="s3cret")
    assert is_valid_signature(raw_body=body, header=header, app_secret="s3cret")
    # The same JSON re-serialised differently is not what Meta signed.
    assert not is_valid_signature(raw_body='{"text":"äöå / @"}'.encode(), header=header, app_secret="s3cret")


def test_signature_rejects_wrong_secret_prefix_and_empty_secret():
    body = b"{}"
    header = sign_body(raw_body=body, app_secret="s3cret")
    assert not is_valid_signature(raw_body=body, header=header, app_secret="other")
    assert not is_valid_signature(raw_body=body, header=header.removeprefix("sha256="), app_secret="s3cret")
    assert not is_valid_signature(raw_body=body, header=header, app_secret="")


def test_handshake_needs_subscribe_mode_and_the_token():
    assert is_valid_handshake(mode="subscribe", token="t", verify_token="t")
    assert not is_valid_handshake(mode="unsubscribe", token="t", verify_token="t")
    assert not is_valid_handshake(mode="subscribe", token="x", verify_token="t")
    assert not is_valid_handshake(mode="subscribe", token="", verify_token="")
