"""Ultralytics YOLO training and validation with mAP, seconds and kWh per phase."""

from detreduce.train.budget import BUDGETS, EpochPlan, plan_epochs
from detreduce.train.result import TrainResult
from detreduce.train.yolo import RESULT_FILE, train_yolo

__all__ = [
    "BUDGETS",
    "EpochPlan",
    "RESULT_FILE",
    "TrainResult",
    "plan_epochs",
    "train_yolo",
]
