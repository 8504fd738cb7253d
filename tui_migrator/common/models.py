"""Base for the response models the faces render: camelCase in JSON, as in the HTTP design."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def to_json_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
