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
