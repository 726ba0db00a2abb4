"""What a caller wants, as the conversation brain classifies each turn (design.md: The conversation brain)."""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    CHECK_STATUS = "CHECK_STATUS"
    GET_HOURS = "GET_HOURS"
    GET_LOCATION = "GET_LOCATION"
    GET_SERVICES = "GET_SERVICES"
    TRANSFER_HUMAN = "TRANSFER_HUMAN"
    GOODBYE = "GOODBYE"
    UNKNOWN = "UNKNOWN"
