"""Closed vocabularies shared by events, rules and APIs."""

from enum import StrEnum


class UnitLevel(StrEnum):
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    DEPARTMENT = "department"


class LeaderLevel(StrEnum):
    TOWNSHIP = "township"
    COUNTY = "county"
    CITY = "city"


class Role(StrEnum):
    CADRE = "cadre"
    LEADER = "leader"
    ORG_ADMIN = "org_admin"
    SUPER_ADMIN = "super_admin"
    SENIOR_ADMIN = "senior_admin"
    JUNIOR_ADMIN = "junior_admin"


class CheckInMode(StrEnum):
    NORMAL = "normal"
    MEETING = "meeting"
    BUSINESS_TRIP = "business_trip"
    STUDY = "study"
    TRAINING = "training"
    VILLAGE_VISIT = "village_visit"
    GOING_OUT = "going_out"
    LEAVE = "leave"


class FlagReason(StrEnum):
    DEVICE_MISMATCH = "device_mismatch"
    IMPOSSIBLE_SPEED = "impossible_speed"
    POOR_ACCURACY = "poor_accuracy"
    REPEATED_COORDINATES = "repeated_coordinates"
    MISMATCH_HISTORY = "mismatch_history"
    OUTSIDE_GEOFENCE = "outside_geofence"


class LeaveKind(StrEnum):
    ANNUAL = "annual"
    SICK = "sick"
    PERSONAL = "personal"
    MARRIAGE = "marriage"
    MATERNITY = "maternity"
    BEREAVEMENT = "bereavement"
    COMPENSATORY = "compensatory"


class HalfDay(StrEnum):
    MORNING = "am"
    AFTERNOON = "pm"


class DayStatus(StrEnum):
    PRESENT = "present"
    ON_LEAVE = "on_leave"
    ABSENT = "absent"
    HOLIDAY = "holiday"


class Dimension(StrEnum):
    POLITICS = "politics"
    DISCIPLINE = "discipline"
    LEARNING = "learning"
    COMMUNICATION = "communication"
    RESPONSIBILITY = "responsibility"


class Reaction(StrEnum):
    LIKE = "like"
    DISLIKE = "dislike"


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


# Who may change shared data, and who may read everything in a tenant.
ADMIN_ROLES = frozenset({Role.ORG_ADMIN, Role.SUPER_ADMIN, Role.SENIOR_ADMIN})
READ_ALL_ROLES = ADMIN_ROLES | {Role.JUNIOR_ADMIN}
