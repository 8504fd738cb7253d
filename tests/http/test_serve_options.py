"""serve is safe by default: the loopback interface, and another address only with TLS or the
operator's word that a TLS-terminating proxy is in front; each refusal before anything listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_migrator.common.errors import BadInput
from tui_migrator.http.server import ServeOptions, check_options


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_the_loopback_interface_needs_nothing_more(host: str) -> None:
    check_options(ServeOptions(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "api.clinic.example"])
def test_another_address_without_tls_is_refused_naming_the_ways_out(host: str) -> None:
    with pytest.raises(BadInput, match="in the clear") as refused:
        check_options(ServeOptions(host=host))
    assert refused.value.hint is not None
    assert "--certfile" in refused.value.hint and "--insecure-behind-proxy" in refused.value.hint
    check_options(ServeOptions(host=host, insecure_behind_proxy=True))


def test_tls_needs_both_files_and_readable_ones(tmp_path: Path) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.write_text("certificate")
    with pytest.raises(BadInput, match="both --certfile and --keyfile"):
        check_options(ServeOptions(host="0.0.0.0", certfile=certificate))
    with pytest.raises(BadInput, match="--keyfile .*no readable file"):
        check_options(ServeOptions(host="0.0.0.0", certfile=certificate, keyfile=key))
    key.write_text("key")
    options = ServeOptions(host="0.0.0.0", port=8443, certfile=certificate, keyfile=key)
    check_options(options)
    assert options.url() == "https://0.0.0.0:8443/api/data-migration"
