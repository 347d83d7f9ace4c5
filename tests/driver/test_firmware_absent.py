"""A NIC without management firmware (the software NIC): the driver says so at once instead of waiting."""

from __future__ import annotations

import json
import time

import pytest

import splitnic
from splitnic.firmware import Firmware, NoFirmwareError

from .test_commands import assert_one_line_error, run


def test_info_says_there_is_no_firmware(softnic) -> None:
    result = run("info", "--link", softnic.link)
    assert result.returncode == 0, result.stderr
    assert "firmware:  none (FW_VERSION reads 0" in result.stdout
    assert json.loads(run("info", "--json", "--link", softnic.link).stdout)["firmware"] is None


def test_phy_command_fails_clearly_without_firmware(softnic) -> None:
    start = time.monotonic()
    assert_one_line_error(run("phy", "--link", softnic.link, "read", "bmsr"), "no management firmware")
    assert time.monotonic() - start < 30      # no waiting for an answer that cannot come
    assert_one_line_error(run("phy", "--link", softnic.link, "read", "99"), "0..31")
    assert_one_line_error(run("selftest", "--firmware", "--link", softnic.link), "no management firmware")


def test_mailbox_commands_raise_without_firmware(softnic) -> None:
    with splitnic.open(softnic.link) as nic:
        fw = Firmware(nic.bus, timeout=0.5)
        assert fw.status().version is None and not fw.present()
        with pytest.raises(NoFirmwareError, match="FW_VERSION reads 0"):
            fw.selftest()
