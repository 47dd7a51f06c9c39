"""training/runs.csv: one row per start or resume of the trainer, saying where the run was and what shaped it from
there on (schedule length, data mix, learning rate). The curve marks the rows that changed something."""
import csv
import os

# The data mix: shares of synthetic layered scenes (slow, motion-blurred, fast, zooming), of batches trained from a
# warm start, of self-supervised batches of real video, of rigid 3-D scenes, of real video with classical flow as
# targets, of steps run with more refinement iterations, and of labelled batches seen closer (magnified). Rows
# written before a share existed read it as 0.
MIX = (("slow_share", "slow"), ("blur_share", "blur"), ("fast_share", "fast"), ("zoom_share", "zoom"),
       ("warm_share", "warm start"), ("video_share", "video"), ("rigid_share", "rigid 3-D"),
       ("pseudo_share", "pseudo-labelled video"), ("long_share", "long refinement"), ("magnify_share", "magnified"))
# `start` says where a row's run began: "scratch" (random weights), "bundled" (a new stage from the bundled export,
# whose steps count from 0 again) or "resumed" (from the state); empty in rows written before it was recorded.
# `note` says what the mix does not (the trainer's --note: a new generator, another teacher).
RUN_FIELDS = ["step", "wall_hours", "steps"] + [key for key, _ in MIX] + ["lr", "start", "note"]


def log_run(path: str, *, step: int, wall_hours: float, steps: int, lr: float, start: str = "", note: str = "",
            **mix: float) -> None:
    """Appends a row; a file of older columns is first rewritten in RUN_FIELDS."""
    header, rows = _read(path)
    rewrite = bool(rows) and header != RUN_FIELDS
    with open(path, "w" if rewrite or not rows else "a", newline="") as runs:
        writer = csv.DictWriter(runs, fieldnames=RUN_FIELDS)
        if rewrite or not rows:
            writer.writeheader()
        if rewrite:
            writer.writerows(rows)
        writer.writerow({"step": step, "wall_hours": round(wall_hours, 4), "steps": steps, "lr": f"{lr:.4g}",
                         "start": start, "note": note, **{key: mix.get(key, 0.0) for key, _ in MIX}})


def _read(path: str):
    """The file's header and its rows, each with every field of RUN_FIELDS (a share missing from an older file
    is 0); no header and no rows when there is no file."""
    if not os.path.exists(path):
        return [], []
    with open(path, newline="") as runs:
        reader = csv.DictReader(runs)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    for row in rows:
        for key, _ in MIX:
            if row.get(key) in (None, ""):
                row[key] = "0.0"
    return header, [{key: row.get(key, "") for key in RUN_FIELDS} for row in rows]


def read_runs(path: str) -> list:
    """The rows, each with every field of RUN_FIELDS (a share missing from an older file is 0)."""
    return _read(path)[1]


def _changed(before: dict, row: dict) -> str:
    """What a run changed from the run before: its note, its schedule's length and the shares of the mix that
    differ."""
    said = [row["note"]] if row.get("note") else []
    said += [f"schedule {int(row['steps']):,} steps"] if int(row["steps"]) != int(before["steps"]) else []
    said += [f"{name} {float(row[key]):.0%}" for key, name in MIX if float(row[key]) != float(before[key])]
    return ", ".join(said)


def run_changes(runs: list) -> list:
    """(wall hours, label) for each run that changed the schedule's length or the data mix from the run before."""
    return [(float(row["wall_hours"]), said) for before, row in zip(runs, runs[1:]) if (said := _changed(before, row))]


def stages(runs: list) -> list:
    """The training stages: a stage begins with the first run and with each run that started again (from scratch or
    from the bundled weights). Each is {"hours", "start", "changed", "later"}: where it began, how, what it changed
    from the run before it, and the (wall hours, label) of the changes resumed runs made within it."""
    found = []
    for index, row in enumerate(runs):
        said = _changed(runs[index - 1], row) if index else row.get("note", "")
        if index == 0 or row["start"] in ("scratch", "bundled"):
            found.append({"hours": float(row["wall_hours"]), "start": row["start"] or "scratch", "changed": said,
                          "later": []})
        elif said:
            found[-1]["later"].append((float(row["wall_hours"]), said))
    return found


def read_plan(path: str) -> list:
    """A runs.csv used as a plan: the rows of its first stage (those before the first run that started again from
    the bundled weights) in step order, with the options they set parsed. Raises ValueError naming the file and the
    row when a row is not usable."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found")
    plan = []
    for number, row in enumerate(read_runs(path), start=2):
        if row["start"] == "bundled":
            break
        try:
            entry = {"step": int(row["step"]), "steps": int(row["steps"]),
                     **{key: float(row[key]) for key, _ in MIX}}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} line {number}: not a run row ({error})") from None
        if (entry["steps"] <= entry["step"] or not all(0 <= entry[key] <= 1 for key, _ in MIX)
                or entry["slow_share"] + entry["fast_share"] > 1):
            raise ValueError(f"{path} line {number}: steps must exceed step, shares be in [0, 1] and slow and fast "
                             f"together at most 1, got {row}")
        plan.append(entry)
    if not plan:
        raise ValueError(f"{path} has no run rows")
    return sorted(plan, key=lambda entry: entry["step"])


def plan_at(plan: list, step: int):
    """The plan's options in force at `step` and the step of its next change (None when there is none)."""
    current = [entry for entry in plan if entry["step"] <= step]
    later = [entry["step"] for entry in plan if entry["step"] > step]
    return (current[-1] if current else plan[0]), (later[0] if later else None)
