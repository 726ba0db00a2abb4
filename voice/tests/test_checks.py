from __future__ import annotations

from voice import checks


def test_it_warns_at_startup_when_espeak_ng_is_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    [warning] = checks.espeak_installed()
    assert warning.id == "voice.W001"
    assert "espeak-ng" in warning.msg


def test_it_is_quiet_when_espeak_ng_is_installed():
    assert checks.espeak_installed() == []
