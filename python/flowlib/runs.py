"""training/runs.csv: one row per start or resume of the trainer, saying where the run was and what shaped it from
there on (schedule length, data mix, learning rate). The curve marks the rows that changed something."""
import csv
import os

RUN_FIELDS = ["step", "wall_hours", "steps", "slow_share", "blur_share", "lr"]


def log_run(path: str, *, step: int, wall_hours: float, steps: int, slow_share: float, blur_share: float,
            lr: float) -> None:
    new = not os.path.exists(path)
    with open(path, "a", newline="") as runs:
        writer = csv.DictWriter(runs, fieldnames=RUN_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({"step": step, "wall_hours": round(wall_hours, 4), "steps": steps, "slow_share": slow_share,
                         "blur_share": blur_share, "lr": f"{lr:.4g}"})


def read_runs(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as runs:
        return list(csv.DictReader(runs))


def run_changes(runs: list) -> list:
    """(wall hours, label) for each run that changed the schedule's length or the data mix from the run before."""
    changes = []
    for before, row in zip(runs, runs[1:]):
        said = [f"schedule {int(row['steps']):,} steps"] if int(row["steps"]) != int(before["steps"]) else []
        said += [f"{name} {float(row[key]):.0%}" for key, name in (("slow_share", "slow"), ("blur_share", "blur"))
                 if float(row[key]) != float(before[key])]
        if said:
            changes.append((float(row["wall_hours"]), ", ".join(said)))
    return changes


def read_plan(path: str) -> list:
    """A runs.csv used as a plan: the rows in step order, with the options they set parsed. Raises ValueError naming
    the file and the row when a row is not usable."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found")
    plan = []
    for number, row in enumerate(read_runs(path), start=2):
        try:
            entry = {"step": int(row["step"]), "steps": int(row["steps"]), "slow_share": float(row["slow_share"]),
                     "blur_share": float(row["blur_share"])}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} line {number}: not a run row ({error})") from None
        if entry["steps"] <= entry["step"] or not all(0 <= entry[k] <= 1 for k in ("slow_share", "blur_share")):
            raise ValueError(f"{path} line {number}: steps must exceed step and shares be in [0, 1], got {row}")
        plan.append(entry)
    if not plan:
        raise ValueError(f"{path} has no run rows")
    return sorted(plan, key=lambda entry: entry["step"])


def plan_at(plan: list, step: int):
    """The plan's options in force at `step` and the step of its next change (None when there is none)."""
    current = [entry for entry in plan if entry["step"] <= step]
    later = [entry["step"] for entry in plan if entry["step"] > step]
    return (current[-1] if current else plan[0]), (later[0] if later else None)
