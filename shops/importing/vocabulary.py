"""The words exports use: header spellings, status labels, two-word vehicle makes."""

from __future__ import annotations

import re

from shops.models import WorkOrder


def key(text: str) -> str:
    """Case- and punctuation-insensitive key: 'Repair Order #' → 'repairordernumber'."""
    return re.sub(r"[^0-9a-z]", "", text.lower().replace("#", "number"))


HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": (
        "RO#", "RO Number", "RO", "RO No", "Repair Order", "Repair Order #", "Work Order", "Work Order #",
        "WO#", "WO", "Invoice #", "Invoice", "Order Number", "Order #", "Number",
    ),
    "customer_name": ("Customer", "Customer Name", "Name", "Client", "Client Name"),
    "first_name": ("First Name", "First", "Customer First Name"),
    "last_name": ("Last Name", "Last", "Surname", "Customer Last Name"),
    "customer_phone": (
        "Phone", "Customer Phone", "Cell", "Cell Phone", "Mobile", "Mobile Phone", "Phone Number", "Tel",
        "Telephone",
    ),
    "vehicle_year": ("Year", "Vehicle Year", "Yr"),
    "vehicle_make": ("Make", "Vehicle Make"),
    "vehicle_model": ("Model", "Vehicle Model"),
    "vehicle": ("Vehicle", "Year Make Model", "YMM", "Car"),
    "vehicle_plate": (
        "Plate", "License", "License Plate", "Licence", "Licence Plate", "Plate Number", "Tag", "Vehicle Plate",
    ),
    "vin": ("VIN", "VIN #", "VIN Last 6"),
    "status": ("Status", "RO Status", "Job Status", "Work Order Status", "Order Status"),
    "services": ("Services", "Service", "Work Requested", "Concern", "Concerns", "Jobs", "Job", "Description"),
    "promised": (
        "Promised Date", "Promised", "Promise Date", "Promised At", "Promised By", "Due", "Due Date",
        "Promise Time", "Promised Time", "Due Time", "ETA",
    ),
    "status_note": ("Notes", "Note", "Status Note", "Comments", "Comment", "Remarks"),
    "external_id": ("External ID", "Ext ID", "Source ID"),
}  # fmt: skip
# key → (field, rank): when two columns mean the same field, the earlier synonym wins ("RO #" over
# "Invoice #"), then the earlier column; an empty cell falls through to the next column.
HEADER_KEYS = {key(name): (canon, rank) for canon, names in HEADER_SYNONYMS.items() for rank, name in enumerate(names)}

_S = WorkOrder.Status
STATUS_SYNONYMS: dict[str, tuple[str, ...]] = {
    _S.ESTIMATE: ("Estimate", "Quote", "Quoted", "Estimating"),
    _S.RECEIVED: ("Received", "Checked In", "Check In", "Dropped Off", "New", "Open", "In Shop", "Arrived"),
    _S.DIAGNOSING: ("Diagnosing", "Diagnosis", "Diagnostic", "Diagnostics", "Inspecting", "Inspection"),
    _S.AWAITING_APPROVAL: (
        "Awaiting Approval", "Waiting for Approval", "Waiting on Approval", "Pending Approval", "Needs Approval",
        "Awaiting Authorization",
    ),
    _S.WAITING_ON_PARTS: (
        "Waiting on Parts", "Waiting for Parts", "Awaiting Parts", "Parts on Order", "Parts Ordered",
        "Backordered", "Back Ordered", "Backorder",
    ),
    _S.IN_PROGRESS: ("In Progress", "Work in Progress", "WIP", "Working", "In Work", "In Repair", "Repairing"),
    _S.QUALITY_CHECK: ("Quality Check", "QC", "Road Test", "Road Testing", "Final Inspection"),
    _S.READY_FOR_PICKUP: (
        "Complete", "Completed", "Done", "Ready", "Ready for Pickup", "Ready for Pick Up", "Finished",
    ),
    _S.PICKED_UP: ("Picked Up", "Delivered", "Closed", "Paid", "Posted", "Invoiced"),
    _S.CANCELLED: ("Cancelled", "Canceled", "Declined", "Void", "Voided", "Deleted"),
}  # fmt: skip
STATUS_KEYS = {key(name): str(status) for status, names in STATUS_SYNONYMS.items() for name in names}
STATUS_KEYS.update({key(value): value for value, _label in _S.choices})
STATUS_KEYS.update({key(label): value for value, label in _S.choices})

# Two-word makes, so "2019 Land Rover Discovery" is make "Land Rover", model "Discovery".
# Hyphenated spellings (Mercedes-Benz, Rolls-Royce) are one word already.
MULTI_WORD_MAKES = {
    ("land", "rover"),
    ("alfa", "romeo"),
    ("aston", "martin"),
    ("mercedes", "benz"),
    ("rolls", "royce"),
    ("austin", "healey"),
    ("de", "tomaso"),
    ("am", "general"),
}
