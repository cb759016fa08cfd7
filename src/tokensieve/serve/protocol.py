"""The OpenAI request bodies the server accepts (pydantic), with tokensieve's per-request extension."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

PROMPT = {"anyOf": [{"type": "string", "minLength": 1},
                   {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}
STOP_LIST = {"type": "array", "items": {"type": "string"}, "maxItems": 4}


class SieveOptions(BaseModel):
    """`"tokensieve": {"policy": "snapkv", "budget": 0.25, "kv_dtype": "int4"}`: this request's policy and KV
    storage precision, overriding the server's."""

    model_config = ConfigDict(extra="forbid")
    policy: str | None = None
    budget: float | None = Field(None, gt=0, le=1)  # a ratio of the prompt, as in the CLI's 0.25
    kv_dtype: Literal["fp", "int8", "int4"] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, json_schema_extra={"minimum": 1, "maximum": 1})  # published; the validator words the refusal
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | Annotated[list[str], WithJsonSchema(STOP_LIST)] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)  # what a torch.Generator takes
    tokensieve: SieveOptions | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        return stops

    @property
    def stops(self) -> list[str]:
        return list(self.stop or [])


class CompletionRequest(_Common):
    prompt: Annotated[str | list[str], WithJsonSchema(PROMPT)]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions
    echo: bool = Field(False, json_schema_extra={"enum": [False]})  # accepted only as the default
    logprobs: int | None = Field(None, json_schema_extra={"enum": [None]})

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("prompt is an empty list")
        if value == "" or (isinstance(value, list) and "" in value):
            raise ValueError("a prompt is empty")
        return value

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text ones are supported
            return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
