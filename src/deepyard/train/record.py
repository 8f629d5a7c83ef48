"""run.json as a typed record: what the domain reads of a run (its dataset, task, network, settings, source).

`load_run` and `get_run` keep handing out the parsed JSON (listings and the REST API show it as it is, unknown
fields included); code that works with a run reads it through `RunRecord.of(info)`, which checks the fields it
names and gives them their types. Runs made before tasks existed are classification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from deepyard.errors import IntegrityError
from deepyard.tasks.base import DEFAULT_TASK
from deepyard.train.config import TrainConfig


@dataclass(frozen=True)
class NetworkRecord:
    """The network a run trains: the reference as given, and the whole spec as data (None: a library network)."""

    ref: str
    spec: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "spec": self.spec}


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    created: str  # ISO 8601, UTC
    dataset: str  # the dataset's id
    task: str
    network: NetworkRecord
    config: TrainConfig
    status: str
    source: dict[str, Any] | None = None  # where a fine-tune starts (deepyard.transfer.sources)
    placement: dict[str, Any] | None = None
    advice: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # run.json as read

    @classmethod
    def of(cls, info: dict[str, Any]) -> RunRecord:
        """The typed record of a parsed run.json (IntegrityError naming the field that does not fit)."""
        try:
            network = info["network"]
            return cls(
                id=str(info["id"]), name=str(info["name"]), created=str(info["created"]),
                dataset=str(info["dataset"]), task=str(info.get("task") or DEFAULT_TASK),
                network=NetworkRecord(str(network["ref"]), network.get("spec")),
                config=TrainConfig.model_validate(info["config"]), status=str(info["status"]),
                source=info.get("source"), placement=info.get("placement"), advice=tuple(info.get("advice") or ()),
                raw=info,
            )  # fmt: skip
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "config." + ".".join(str(p) for p in first["loc"])
            raise IntegrityError(f"run.json of run {info.get('id')!r} does not fit its record: {where}: "
                                 f"{first['msg']}") from None  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"run.json of run {info.get('id')!r} does not fit its record: {exc!r}") from None
