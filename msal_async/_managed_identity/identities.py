"""The managed identity types of msal: plain ``UserDict``s with ``ManagedIdentityIdType``/``Id``."""

from __future__ import annotations

from collections import UserDict
from typing import Any

from .._errors import ManagedIdentityError

__all__ = [
    "ManagedIdentity",
    "SystemAssignedManagedIdentity",
    "UserAssignedManagedIdentity",
    "check_managed_identity",
]


class ManagedIdentity(UserDict[str, Any]):
    """A managed identity as a dict ``{"ManagedIdentityIdType": ..., "Id": ...}`` (msal's).

    Args:
        identifier: the id (None for system-assigned).
        id_type: ``SystemAssigned``, ``ClientId``, ``ResourceId`` or ``ObjectId``.
    """

    ID_TYPE = "ManagedIdentityIdType"
    ID = "Id"
    CLIENT_ID = "ClientId"
    RESOURCE_ID = "ResourceId"
    OBJECT_ID = "ObjectId"
    SYSTEM_ASSIGNED = "SystemAssigned"
    _USER_TYPES = (CLIENT_ID, RESOURCE_ID, OBJECT_ID)

    def __init__(self, identifier: str | None = None, id_type: str | None = None) -> None:
        super().__init__({self.ID_TYPE: id_type, self.ID: identifier})

    @classmethod
    def is_managed_identity(cls, unknown: object) -> bool:
        """Whether ``unknown`` is a managed identity (an instance or a dict of that shape).

        Returns:
            True or False.
        """
        return (
            isinstance(unknown, ManagedIdentity)
            or cls.is_system_assigned(unknown)
            or cls.is_user_assigned(unknown)
        )

    @classmethod
    def is_system_assigned(cls, unknown: object) -> bool:
        """Whether ``unknown`` names the system-assigned identity.

        Returns:
            True or False.
        """
        return isinstance(unknown, SystemAssignedManagedIdentity) or (
            isinstance(unknown, dict | UserDict) and unknown.get(cls.ID_TYPE) == cls.SYSTEM_ASSIGNED
        )

    @classmethod
    def is_user_assigned(cls, unknown: object) -> bool:
        """Whether ``unknown`` names a user-assigned identity (with a non-empty id).

        Returns:
            True or False.
        """
        return isinstance(unknown, UserAssignedManagedIdentity) or (
            isinstance(unknown, dict | UserDict)
            and unknown.get(cls.ID_TYPE) in cls._USER_TYPES
            and bool(unknown.get(cls.ID))
        )


class SystemAssignedManagedIdentity(ManagedIdentity):
    """The system-assigned identity: ``{"ManagedIdentityIdType": "SystemAssigned", "Id": None}``."""

    def __init__(self) -> None:
        super().__init__(id_type=self.SYSTEM_ASSIGNED)


class UserAssignedManagedIdentity(ManagedIdentity):
    """A user-assigned identity, named by exactly one of its three ids.

    Args:
        client_id: the identity's client (application) id.
        resource_id: its Azure resource id.
        object_id: its object (principal) id.

    Raises:
        ManagedIdentityError: not exactly one id given.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        resource_id: str | None = None,
        object_id: str | None = None,
    ) -> None:
        given = [
            (kind, value)
            for kind, value in (
                (self.CLIENT_ID, client_id),
                (self.RESOURCE_ID, resource_id),
                (self.OBJECT_ID, object_id),
            )
            if value
        ]
        if len(given) != 1:
            msg = "You shall specify one of the three parameters: client_id, resource_id, object_id"
            raise ManagedIdentityError(msg)
        [(kind, value)] = given
        super().__init__(identifier=value, id_type=kind)


def check_managed_identity(value: object) -> dict[str, Any]:
    """Validate the ``managed_identity`` argument.

    Returns:
        A plain dict copy.

    Raises:
        ManagedIdentityError: not a managed identity.
    """
    if not ManagedIdentity.is_managed_identity(value):
        msg = (
            f"Incorrect managed_identity: {value!r}; pass SystemAssignedManagedIdentity() or "
            "UserAssignedManagedIdentity(client_id=...|resource_id=...|object_id=...)"
        )
        raise ManagedIdentityError(msg)
    assert isinstance(value, dict | UserDict)  # noqa: S101 - narrowed by the check above
    return dict(value)
