"""Who is acting: platform identities → people (DOMAIN §1.2, §11.1)."""
from __future__ import annotations

import uuid

from core.model import Identity, Person, Platform, Role
from core.ports import UnitOfWork


async def identify(uow: UnitOfWork, platform: Platform, workspace_id: str, external_user_id: str,
                   display_name: str | None = None, email: str | None = None,
                   bootstrap_admins: frozenset[str] | set[str] = frozenset()) -> Person:
    """The person behind a platform user, provisioned on first contact as an engineer (an admin
    when listed in FLOWPILOT_ADMINS). Identities with the same verified email are one person."""
    person = await uow.people.by_identity(platform.value, workspace_id, external_user_id)
    if person is not None:
        if email and not person.email:
            await uow.people.update_profile(person.id, None, email)
        return person
    if email:
        person = await uow.people.by_email(email)
    if person is None:
        role = Role.ADMIN if external_user_id in bootstrap_admins else Role.ENGINEER
        person = Person(id=uuid.uuid4(), account_id=uow.account_id,
                        display_name=(display_name or external_user_id)[:200], role=role, email=email)
        await uow.people.add(person)
    await uow.people.link_identity(Identity(platform, workspace_id, external_user_id, person.id))
    again = await uow.people.by_identity(platform.value, workspace_id, external_user_id)
    return again or person


async def external_id_for(uow: UnitOfWork, person_id: uuid.UUID, platform: str) -> str | None:
    for ident in await uow.people.identities_of(person_id):
        if ident.platform.value == platform:
            return ident.external_user_id
    return None
