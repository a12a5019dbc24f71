"""What makes two requests with one Idempotency-Key "the same request"."""

from cadre.events.idempotency import _comparable_body


def test_a_multipart_retry_with_a_fresh_boundary_is_the_same_request() -> None:
    def multipart(boundary: bytes) -> tuple[dict[bytes, bytes], bytes]:
        body = b"--" + boundary + b"\r\ncontent\r\n--" + boundary + b"--\r\n"
        return {b"content-type": b"multipart/form-data; boundary=" + boundary}, body

    assert _comparable_body(*multipart(b"aaa")) == _comparable_body(*multipart(b"bbb"))
    json_headers = {b"content-type": b"application/json"}
    assert _comparable_body(json_headers, b"--aaa") == b"--aaa"
