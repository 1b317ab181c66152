"""Datasets: one in-memory model, readers per format, validation, export."""

from detreduce.data.load import detect_format, load_dataset
from detreduce.data.model import DetectionDataset
from detreduce.data.problems import Problem

__all__ = ["DetectionDataset", "Problem", "detect_format", "load_dataset"]
