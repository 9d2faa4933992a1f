"""A multipart/form-data parser for the upload routes (DashScope's OSS form post, WaveSpeed's binary
upload). The sim has no python-multipart, and a dozen lines cover what the SDKs send."""

from __future__ import annotations


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """(fields, files) of a multipart/form-data body; files map name → (filename, bytes, content type)."""
    boundary = None
    for piece in content_type.split(";"):
        k, _, v = piece.strip().partition("=")
        if k.lower() == "boundary":
            boundary = v.strip().strip('"')
    if not boundary:
        raise ValueError("multipart body without a boundary")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    delim = b"--" + boundary.encode()
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, _, data = part.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        disp = headers.get("content-disposition", "")
        params: dict[str, str] = {}
        for piece in disp.split(";")[1:]:
            k, _, v = piece.strip().partition("=")
            params[k.lower()] = v.strip().strip('"')
        name = params.get("name", "")
        if "filename" in params:
            files[name] = (params["filename"], data, headers.get("content-type", "application/octet-stream"))
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files
