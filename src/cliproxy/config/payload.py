"""The `payload:` section: rules that edit the upstream request body (placeholder; filled in
by routing/payload.py's author)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PayloadConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    default: list[Any] = Field(default_factory=list)
    default_raw: list[Any] = Field(default_factory=list, alias="default-raw")
    override: list[Any] = Field(default_factory=list)
    override_raw: list[Any] = Field(default_factory=list, alias="override-raw")
    filter: list[Any] = Field(default_factory=list)
