import pytest
from notifications.domain.ssrf import UnsafeTarget, check_target


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://172.16.5.4/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://user:pw@8.8.8.8/hook",
        "ftp://files.example/hook",
        "http://8.8.8.8/hook",
    ],
)
def test_unsafe_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(url, allow_private=False)


def test_public_literal_address_is_allowed() -> None:
    check_target("https://8.8.8.8/hook", allow_private=False)


def test_test_settings_allow_loopback() -> None:
    check_target("http://127.0.0.1:8010/receiver/x", allow_private=True)
