"""The nine ParkML data categories a sensitive table can belong to."""

from __future__ import annotations

from enum import StrEnum


class DataCategory(StrEnum):
    DEMOGRAPHICS = "DEMOGRAPHICS"
    MOTOR_SYMPTOMS = "MOTOR_SYMPTOMS"
    NON_MOTOR_SYMPTOMS = "NON_MOTOR_SYMPTOMS"
    AUTONOMIC_SYMPTOMS = "AUTONOMIC_SYMPTOMS"
    DAILY_ACTIVITIES = "DAILY_ACTIVITIES"
    MEDICATION_DATA = "MEDICATION_DATA"
    EMERGENCY_CONTACTS = "EMERGENCY_CONTACTS"
    SAFETY_INCIDENTS = "SAFETY_INCIDENTS"
    ENVIRONMENTAL_FACTORS = "ENVIRONMENTAL_FACTORS"


CATEGORY_NAMES: tuple[str, ...] = tuple(category.value for category in DataCategory)
