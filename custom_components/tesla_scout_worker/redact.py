"""Keep VINs and tokens out of log records and diagnostics."""

from __future__ import annotations

import logging
import re

from .const import DOMAIN

VIN_PATTERN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")
BEARER_PATTERN = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")
JWT_PATTERN = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED_LOGGERS = ("tesla_fleet_api", f"custom_components.{DOMAIN}")


def redact_text(text: str) -> str:
    """Mask VINs, bearer tokens and JWTs in text."""
    text = BEARER_PATTERN.sub(r"\1**REDACTED**", text)
    text = JWT_PATTERN.sub("**REDACTED**", text)
    return VIN_PATTERN.sub("**VIN**", text)


class RedactingFilter(logging.Filter):
    """Rewrite records whose text contains a VIN or a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message in place; never drop the record."""
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = RedactingFilter()


def _redacted_logger(name: str) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in REDACTED_LOGGERS)


def install_log_redaction() -> None:
    """Attach the filter to the loggers that may see VINs (idempotent).

    A logger's filters do not see records of its child loggers, so every
    existing child gets the filter too. Modules of this integration log through
    the package logger (const.LOGGER), so children created later carry no
    records of ours.

    Home Assistant imports other integrations in executor threads meanwhile,
    and each import may add a logger: the table is copied in one step (atomic
    for a dict) before it is walked.
    """
    loggers = logging.Logger.manager.loggerDict.copy()
    names = [*REDACTED_LOGGERS]
    names.extend(
        name
        for name, logger in loggers.items()
        if isinstance(logger, logging.Logger) and _redacted_logger(name)
    )
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
