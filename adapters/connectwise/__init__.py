"""ConnectWise Manage: the TicketSystem port over its REST API."""
from .client import DEFAULT_API_PATH, DEFAULT_API_VERSION, ConnectWiseTicketSystem
from .factory import make_ticket_system_factory

__all__ = [
    "DEFAULT_API_PATH",
    "DEFAULT_API_VERSION",
    "ConnectWiseTicketSystem",
    "make_ticket_system_factory",
]
