"""Repositories over one tenant transaction. They return core dataclasses and know no rules."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.model import (
    ChatThread, Fact, Fix, Handoff, Identity, LaneItem, Message, Person, Platform, Role, Session,
)
from storage import tables as t
from storage.mapping import row_to, to_values


class _Repo:
    def __init__(self, conn: AsyncConnection, account_id: uuid.UUID) -> None:
        self.conn = conn
        self.account_id = account_id


class PeopleRepo(_Repo):
    async def get(self, person_id: uuid.UUID) -> Person | None:
        row = (await self.conn.execute(select(t.people).where(t.people.c.id == person_id))).first()
        return row_to(Person, row) if row else None

    async def by_identity(self, platform: str, workspace_id: str, external_user_id: str) -> Person | None:
        row = (
            await self.conn.execute(
                select(t.people).join(t.identities, t.identities.c.person_id == t.people.c.id).where(
                    t.identities.c.platform == platform,
                    t.identities.c.workspace_id == workspace_id,
                    t.identities.c.external_user_id == external_user_id,
                )
            )
        ).first()
        return row_to(Person, row) if row else None

    async def by_email(self, email: str) -> Person | None:
        row = (
            await self.conn.execute(select(t.people).where(func.lower(t.people.c.email) == email.lower()).limit(1))
        ).first()
        return row_to(Person, row) if row else None

    async def by_name(self, name: str) -> Person | None:
        row = (
            await self.conn.execute(
                select(t.people).where(func.lower(t.people.c.display_name) == name.lower()).limit(1)
            )
        ).first()
        return row_to(Person, row) if row else None

    async def add(self, person: Person) -> Person:
        await self.conn.execute(
            insert(t.people).values(id=person.id, account_id=self.account_id, display_name=person.display_name,
                                    email=person.email, role=person.role.value)
        )
        return person

    async def link_identity(self, identity: Identity) -> None:
        linked = (await self.conn.execute(
            pg_insert(t.identities)
            .values(account_id=self.account_id, person_id=identity.person_id, platform=identity.platform.value,
                    workspace_id=identity.workspace_id, external_user_id=identity.external_user_id)
            .on_conflict_do_nothing(index_elements=["platform", "workspace_id", "external_user_id"])
            .returning(t.identities.c.person_id)
        )).first()
        if linked is None:
            # A concurrent first contact of the same user linked it first; the person this
            # transaction created for it would be left without any identity: remove it.
            has_identity = select(t.identities.c.person_id).where(t.identities.c.person_id == identity.person_id)
            await self.conn.execute(delete(t.people).where(t.people.c.id == identity.person_id,
                                                           ~has_identity.exists()))

    async def identities_of(self, person_id: uuid.UUID) -> list[Identity]:
        rows = (await self.conn.execute(select(t.identities).where(t.identities.c.person_id == person_id))).all()
        return [Identity(platform=Platform(r.platform), workspace_id=r.workspace_id,
                         external_user_id=r.external_user_id, person_id=r.person_id) for r in rows]

    async def set_role(self, person_id: uuid.UUID, role: Role) -> None:
        await self.conn.execute(update(t.people).where(t.people.c.id == person_id).values(role=role.value))

    async def update_profile(self, person_id: uuid.UUID, display_name: str | None, email: str | None) -> None:
        values: dict[str, Any] = {}
        if display_name:
            values["display_name"] = display_name
        if email:
            values["email"] = email
        if values:
            await self.conn.execute(update(t.people).where(t.people.c.id == person_id).values(**values))

    async def with_role_at_least(self, role: Role) -> list[Person]:
        allowed = [r.value for r in Role if r.at_least(role)]
        rows = (await self.conn.execute(select(t.people).where(t.people.c.role.in_(allowed)))).all()
        return [row_to(Person, r) for r in rows]


_SESSION_COLS = [c.name for c in t.ai_sessions.c if c.name not in ("id", "account_id", "created_at", "updated_at")]


class SessionRepo(_Repo):
    async def get(self, session_id: uuid.UUID, lock: bool = False) -> Session | None:
        q = (
            select(t.ai_sessions, t.chat_threads.c.platform, t.chat_threads.c.workspace_id,
                   t.chat_threads.c.channel_id, t.chat_threads.c.thread_id)
            .outerjoin(t.chat_threads, t.chat_threads.c.session_id == t.ai_sessions.c.id)
            .where(t.ai_sessions.c.id == session_id)
        )
        if lock:
            q = q.with_for_update(of=t.ai_sessions)
        row = (await self.conn.execute(q)).first()
        if row is None:
            return None
        session = row_to(Session, row)
        if row.platform is not None:
            session.thread = ChatThread(Platform(row.platform), row.workspace_id, row.channel_id, row.thread_id)
        return session

    async def add(self, session: Session) -> None:
        values = to_values(session, _SESSION_COLS)
        await self.conn.execute(insert(t.ai_sessions).values(id=session.id, account_id=self.account_id, **values))

    async def save(self, session: Session) -> None:
        values = to_values(session, _SESSION_COLS, exclude=("state_version",))
        await self.conn.execute(
            update(t.ai_sessions).where(t.ai_sessions.c.id == session.id).values(updated_at=func.now(), **values)
        )

    async def bump_version(self, session_id: uuid.UUID) -> int:
        return (
            await self.conn.execute(
                update(t.ai_sessions).where(t.ai_sessions.c.id == session_id)
                .values(state_version=t.ai_sessions.c.state_version + 1)
                .returning(t.ai_sessions.c.state_version)
            )
        ).scalar_one()

    async def bind_thread(self, session_id: uuid.UUID, thread: ChatThread) -> bool:
        """Bind a thread to a session. In conversations without threads (a Teams personal chat)
        a newer session takes the conversation over: the newest session is the one you talk to."""
        stmt = pg_insert(t.chat_threads).values(
            session_id=session_id, account_id=self.account_id, platform=thread.platform.value,
            workspace_id=thread.workspace_id, channel_id=thread.channel_id, thread_id=thread.thread_id)
        res = await self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["platform", "workspace_id", "channel_id", "thread_id"],
            set_={"session_id": stmt.excluded.session_id},
            where=t.chat_threads.c.session_id != stmt.excluded.session_id,
        ))
        return bool(res.rowcount)

    async def by_thread(self, thread: ChatThread) -> Session | None:
        sid = (
            await self.conn.execute(
                select(t.chat_threads.c.session_id).where(
                    t.chat_threads.c.platform == thread.platform.value,
                    t.chat_threads.c.workspace_id == thread.workspace_id,
                    t.chat_threads.c.channel_id == thread.channel_id,
                    t.chat_threads.c.thread_id == thread.thread_id,
                )
            )
        ).scalar_one_or_none()
        return await self.get(sid) if sid else None

    async def count_steps(self, session_id: uuid.UUID) -> int:
        return (
            await self.conn.execute(
                select(func.count()).select_from(t.session_messages).where(
                    t.session_messages.c.session_id == session_id, t.session_messages.c.role == "user")
            )
        ).scalar_one()


class MessageRepo(_Repo):
    async def add(self, message: Message, turn_job_id: int | None = None) -> bool:
        res = await self.conn.execute(
            pg_insert(t.session_messages)
            .values(id=message.id, account_id=self.account_id, session_id=message.session_id, role=message.role,
                    content=message.content, author_id=message.author_id, turn_job_id=turn_job_id)
            .on_conflict_do_nothing()
        )
        return bool(res.rowcount)

    async def history(self, session_id: uuid.UUID, limit: int = 60) -> list[Message]:
        rows = (
            await self.conn.execute(
                select(t.session_messages).where(t.session_messages.c.session_id == session_id)
                .order_by(t.session_messages.c.created_at.desc(), t.session_messages.c.id).limit(limit)
            )
        ).all()
        return [row_to(Message, r) for r in reversed(rows)]

    async def count(self, session_id: uuid.UUID, role: str) -> int:
        return (
            await self.conn.execute(
                select(func.count()).select_from(t.session_messages).where(
                    t.session_messages.c.session_id == session_id, t.session_messages.c.role == role)
            )
        ).scalar_one()

    async def get(self, message_id: uuid.UUID) -> Message | None:
        row = (await self.conn.execute(select(t.session_messages).where(t.session_messages.c.id == message_id))).first()
        return row_to(Message, row) if row else None

    async def reply_for_job(self, job_id: int) -> Message | None:
        row = (
            await self.conn.execute(select(t.session_messages).where(t.session_messages.c.turn_job_id == job_id))
        ).first()
        return row_to(Message, row) if row else None

    async def user_messages_since(self, session_id: uuid.UUID, since: datetime, author_ids: list[uuid.UUID]) -> int:
        return (
            await self.conn.execute(
                select(func.count()).select_from(t.session_messages).where(
                    t.session_messages.c.session_id == session_id, t.session_messages.c.role == "user",
                    t.session_messages.c.created_at > since, t.session_messages.c.author_id.in_(author_ids))
            )
        ).scalar_one()


_LANE_COLS = [c.name for c in t.lane_items.c if c.name not in ("id", "account_id", "session_id", "created_at", "updated_at")]


class LaneRepo(_Repo):
    async def active(self, session_id: uuid.UUID) -> list[LaneItem]:
        rows = (
            await self.conn.execute(
                select(t.lane_items).where(t.lane_items.c.session_id == session_id, t.lane_items.c.active)
                .order_by(t.lane_items.c.kind.desc(), t.lane_items.c.position)
            )
        ).all()
        return [row_to(LaneItem, r) for r in rows]

    async def all(self, session_id: uuid.UUID) -> list[LaneItem]:
        rows = (
            await self.conn.execute(
                select(t.lane_items).where(t.lane_items.c.session_id == session_id).order_by(t.lane_items.c.created_at)
            )
        ).all()
        return [row_to(LaneItem, r) for r in rows]

    async def get(self, item_id: uuid.UUID, lock: bool = False) -> LaneItem | None:
        q = select(t.lane_items).where(t.lane_items.c.id == item_id)
        if lock:
            q = q.with_for_update()
        row = (await self.conn.execute(q)).first()
        return row_to(LaneItem, row) if row else None

    async def add(self, item: LaneItem) -> None:
        await self.conn.execute(
            insert(t.lane_items).values(id=item.id, account_id=self.account_id, session_id=item.session_id,
                                        **to_values(item, _LANE_COLS))
        )

    async def save(self, item: LaneItem) -> None:
        await self.conn.execute(
            update(t.lane_items).where(t.lane_items.c.id == item.id)
            .values(updated_at=func.now(), **to_values(item, _LANE_COLS))
        )


_FACT_COLS = [c.name for c in t.session_facts.c if c.name not in ("id", "account_id", "session_id", "created_at", "updated_at")]


class FactRepo(_Repo):
    async def live(self, session_id: uuid.UUID) -> list[Fact]:
        rows = (
            await self.conn.execute(
                select(t.session_facts).where(t.session_facts.c.session_id == session_id,
                                              t.session_facts.c.deleted_at.is_(None))
                .order_by(t.session_facts.c.created_at, t.session_facts.c.id)
            )
        ).all()
        return [row_to(Fact, r) for r in rows]

    async def get(self, fact_id: uuid.UUID, lock: bool = False) -> Fact | None:
        q = select(t.session_facts).where(t.session_facts.c.id == fact_id)
        if lock:
            q = q.with_for_update()
        row = (await self.conn.execute(q)).first()
        return row_to(Fact, row) if row else None

    async def add(self, fact: Fact) -> None:
        # clock_timestamp, not the transaction's now(): facts promoted together in one turn must
        # list in the order they were added ("oldest first"), not in random id order.
        await self.conn.execute(
            insert(t.session_facts).values(id=fact.id, account_id=self.account_id, session_id=fact.session_id,
                                           created_at=func.clock_timestamp(), updated_at=func.clock_timestamp(),
                                           **to_values(fact, _FACT_COLS))
        )

    async def save(self, fact: Fact) -> None:
        await self.conn.execute(
            update(t.session_facts).where(t.session_facts.c.id == fact.id)
            .values(updated_at=func.now(), **to_values(fact, _FACT_COLS))
        )


_FIX_COLS = [c.name for c in t.session_suggested_fixes.c if c.name not in ("id", "account_id", "session_id", "created_at")]


class FixRepo(_Repo):
    async def get(self, fix_id: uuid.UUID, lock: bool = False) -> Fix | None:
        q = select(t.session_suggested_fixes).where(t.session_suggested_fixes.c.id == fix_id)
        if lock:
            q = q.with_for_update()
        row = (await self.conn.execute(q)).first()
        return row_to(Fix, row) if row else None

    async def active(self, session_id: uuid.UUID) -> Fix | None:
        row = (
            await self.conn.execute(
                select(t.session_suggested_fixes)
                .where(t.session_suggested_fixes.c.session_id == session_id,
                       t.session_suggested_fixes.c.superseded_at.is_(None))
                .order_by(t.session_suggested_fixes.c.created_at.desc()).limit(1)
            )
        ).first()
        return row_to(Fix, row) if row else None

    async def all(self, session_id: uuid.UUID) -> list[Fix]:
        rows = (
            await self.conn.execute(
                select(t.session_suggested_fixes).where(t.session_suggested_fixes.c.session_id == session_id)
                .order_by(t.session_suggested_fixes.c.created_at)
            )
        ).all()
        return [row_to(Fix, r) for r in rows]

    async def supersede_active(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        rows = (
            await self.conn.execute(
                update(t.session_suggested_fixes)
                .where(t.session_suggested_fixes.c.session_id == session_id,
                       t.session_suggested_fixes.c.superseded_at.is_(None))
                .values(superseded_at=func.now()).returning(t.session_suggested_fixes.c.id)
            )
        ).all()
        return [r[0] for r in rows]

    async def add(self, fix: Fix) -> None:
        await self.conn.execute(
            insert(t.session_suggested_fixes).values(id=fix.id, account_id=self.account_id, session_id=fix.session_id,
                                                     **to_values(fix, _FIX_COLS))
        )

    async def save(self, fix: Fix) -> None:
        await self.conn.execute(
            update(t.session_suggested_fixes).where(t.session_suggested_fixes.c.id == fix.id)
            .values(**to_values(fix, _FIX_COLS))
        )


_HANDOFF_COLS = [c.name for c in t.session_handoffs.c if c.name not in ("id", "account_id", "created_at")]


class HandoffRepo(_Repo):
    async def get(self, handoff_id: uuid.UUID, lock: bool = False) -> Handoff | None:
        """`lock=True` before `save`: save writes the whole row, so concurrent writers (summary,
        PSA and re-ping jobs, resolve) must serialise on the row or one loses the other's fields."""
        q = select(t.session_handoffs).where(t.session_handoffs.c.id == handoff_id)
        if lock:
            q = q.with_for_update()
        row = (await self.conn.execute(q)).first()
        return row_to(Handoff, row) if row else None

    async def add(self, handoff: Handoff) -> None:
        await self.conn.execute(
            insert(t.session_handoffs).values(id=handoff.id, account_id=self.account_id,
                                              **to_values(handoff, _HANDOFF_COLS))
        )

    async def save(self, handoff: Handoff) -> None:
        await self.conn.execute(
            update(t.session_handoffs).where(t.session_handoffs.c.id == handoff.id)
            .values(**to_values(handoff, _HANDOFF_COLS, exclude=("claimed_by", "claimed_at")))
        )

    async def try_claim(self, handoff_id: uuid.UUID, person_id: uuid.UUID) -> datetime | None:
        """The one atomic conditional UPDATE: returns claimed_at when this call won."""
        return (
            await self.conn.execute(
                update(t.session_handoffs)
                .where(t.session_handoffs.c.id == handoff_id, t.session_handoffs.c.claimed_by.is_(None))
                .values(claimed_by=person_id, claimed_at=func.now())
                .returning(t.session_handoffs.c.claimed_at)
            )
        ).scalar_one_or_none()

    async def latest_for_session(self, session_id: uuid.UUID) -> Handoff | None:
        row = (
            await self.conn.execute(
                select(t.session_handoffs).where(t.session_handoffs.c.session_id == session_id)
                .order_by(t.session_handoffs.c.created_at.desc()).limit(1)
            )
        ).first()
        return row_to(Handoff, row) if row else None

    async def open_queue(self, exclude_person: uuid.UUID | None) -> list[Handoff]:
        q = select(t.session_handoffs).where(t.session_handoffs.c.claimed_by.is_(None),
                                             t.session_handoffs.c.closed_at.is_(None))
        if exclude_person is not None:
            q = q.where(t.session_handoffs.c.handed_off_by != exclude_person)
        rows = (await self.conn.execute(q.order_by(t.session_handoffs.c.created_at))).all()
        return [row_to(Handoff, r) for r in rows]

    async def mark_first_action(self, session_id: uuid.UUID, person_id: uuid.UUID) -> None:
        await self.conn.execute(
            update(t.session_handoffs)
            .where(t.session_handoffs.c.session_id == session_id, t.session_handoffs.c.claimed_by == person_id,
                   t.session_handoffs.c.first_action_at.is_(None))
            .values(first_action_at=func.now())
        )

    async def claim_metrics(self, days: int) -> dict[str, Any]:
        row = (
            await self.conn.execute(
                text(
                    """
                    SELECT count(*) FILTER (WHERE claimed_at IS NOT NULL) AS claimed,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at - created_at))
                        FILTER (WHERE claimed_at IS NOT NULL) AS claim_p50,
                      percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at - created_at))
                        FILTER (WHERE claimed_at IS NOT NULL) AS claim_p90,
                      count(*) FILTER (WHERE first_action_at IS NOT NULL) AS acted,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_action_at - claimed_at))
                        FILTER (WHERE first_action_at IS NOT NULL) AS action_p50,
                      percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_action_at - claimed_at))
                        FILTER (WHERE first_action_at IS NOT NULL) AS action_p90,
                      count(*) AS escalations
                    FROM session_handoffs WHERE created_at > now() - make_interval(days => :d)
                    """
                ),
                dict(d=days),
            )
        ).first()
        return {k: (float(v) if v is not None and not isinstance(v, int) else v) for k, v in row._mapping.items()}


class SettingsRepo(_Repo):
    async def preferences(self) -> dict[str, Any]:
        value = (
            await self.conn.execute(
                select(t.account_settings.c.preferences).where(t.account_settings.c.account_id == self.account_id)
            )
        ).scalar_one_or_none()
        return dict(value or {})

    async def merge(self, prefs: dict[str, Any]) -> None:
        stmt = pg_insert(t.account_settings).values(account_id=self.account_id, preferences=prefs)
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["account_id"],
                set_={"preferences": t.account_settings.c.preferences.op("||")(stmt.excluded.preferences),
                      "updated_at": func.now()},
            )
        )


class StepRepo(_Repo):
    async def add(self, session_id: uuid.UUID, step_type: str, actor_id: uuid.UUID | None,
                  payload: dict[str, Any] | None = None) -> None:
        order = (
            await self.conn.execute(
                select(func.coalesce(func.max(t.ai_session_steps.c.step_order), 0) + 1)
                .where(t.ai_session_steps.c.session_id == session_id)
            )
        ).scalar_one()
        await self.conn.execute(
            insert(t.ai_session_steps).values(account_id=self.account_id, session_id=session_id, step_order=order,
                                              step_type=step_type, actor_id=actor_id, payload=payload or {})
        )

    async def add_branch(self, session_id: uuid.UUID, fork_reason: str | None, label: str,
                         description: str | None) -> uuid.UUID:
        bid = uuid.uuid4()
        await self.conn.execute(
            insert(t.session_branches).values(id=bid, account_id=self.account_id, session_id=session_id,
                                              fork_reason=fork_reason, label=label, description=description)
        )
        return bid


class RouteRepo(_Repo):
    async def add(self, platform: str, workspace_id: str, channel_id: str, channel_name: str | None,
                  created_by: uuid.UUID) -> bool:
        res = await self.conn.execute(
            pg_insert(t.escalation_routes)
            .values(account_id=self.account_id, platform=platform, workspace_id=workspace_id, channel_id=channel_id,
                    channel_name=channel_name, created_by=created_by)
            .on_conflict_do_nothing()
        )
        return bool(res.rowcount)

    async def all(self) -> list[dict[str, Any]]:
        rows = (await self.conn.execute(select(t.escalation_routes).order_by(t.escalation_routes.c.created_at))).all()
        return [dict(r._mapping) for r in rows]


class PreviewRepo(_Repo):
    async def get(self, kind: str, session_id: uuid.UUID, state_version: int) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(
                select(t.artifact_previews).where(t.artifact_previews.c.kind == kind,
                                                  t.artifact_previews.c.session_id == session_id,
                                                  t.artifact_previews.c.state_version == state_version)
            )
        ).first()
        return dict(row._mapping) if row else None

    async def put(self, kind: str, session_id: uuid.UUID, state_version: int, markdown: str,
                  target_ticket_ref: str | None, fallback: bool) -> None:
        await self.conn.execute(
            text("DELETE FROM artifact_previews WHERE kind = :k AND session_id = :s AND state_version < :v"),
            dict(k=kind, s=session_id, v=state_version),
        )
        stmt = pg_insert(t.artifact_previews).values(
            kind=kind, session_id=session_id, state_version=state_version, account_id=self.account_id,
            markdown=markdown, target_ticket_ref=target_ticket_ref, fallback=fallback)
        await self.conn.execute(
            stmt.on_conflict_do_update(index_elements=["kind", "session_id", "state_version"],
                                       set_={"markdown": stmt.excluded.markdown, "fallback": stmt.excluded.fallback})
        )


class PsaRepo(_Repo):
    async def active_connection(self) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(
                select(t.psa_connections).where(t.psa_connections.c.is_active)
                .order_by(t.psa_connections.c.created_at.desc()).limit(1)
            )
        ).first()
        return dict(row._mapping) if row else None

    async def connection(self, connection_id: uuid.UUID) -> dict[str, Any] | None:
        row = (await self.conn.execute(select(t.psa_connections).where(t.psa_connections.c.id == connection_id))).first()
        return dict(row._mapping) if row else None

    async def add_connection(self, site_url: str, company_id: str, credentials_encrypted: str,
                             active: bool = False) -> uuid.UUID:
        cid = uuid.uuid4()
        await self.conn.execute(
            insert(t.psa_connections).values(id=cid, account_id=self.account_id, site_url=site_url,
                                             company_id=company_id, credentials_encrypted=credentials_encrypted,
                                             is_active=False)
        )
        if active:
            await self.activate(cid)
        return cid

    async def replace_credentials(self, connection_id: uuid.UUID, credentials_encrypted: str) -> None:
        await self.conn.execute(update(t.psa_connections).where(t.psa_connections.c.id == connection_id)
                                .values(credentials_encrypted=credentials_encrypted))

    async def activate(self, connection_id: uuid.UUID) -> None:
        await self.conn.execute(update(t.psa_connections).where(t.psa_connections.c.id != connection_id)
                                .values(is_active=False))
        await self.conn.execute(update(t.psa_connections).where(t.psa_connections.c.id == connection_id)
                                .values(is_active=True))

    async def delete(self, connection_id: uuid.UUID) -> None:
        await self.conn.execute(t.psa_connections.delete().where(t.psa_connections.c.id == connection_id,
                                                                 t.psa_connections.c.is_active.is_(False)))

    async def logged(self, session_id: uuid.UUID, kind: str, state_version: int) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(
                select(t.psa_activity_log).where(t.psa_activity_log.c.session_id == session_id,
                                                 t.psa_activity_log.c.kind == kind,
                                                 t.psa_activity_log.c.state_version == state_version)
            )
        ).first()
        return dict(row._mapping) if row else None

    async def log(self, session_id: uuid.UUID, kind: str, state_version: int, ticket_id: str,
                  external_id: str | None) -> None:
        await self.conn.execute(
            pg_insert(t.psa_activity_log)
            .values(account_id=self.account_id, session_id=session_id, kind=kind, state_version=state_version,
                    ticket_id=ticket_id, external_id=external_id)
            .on_conflict_do_nothing()
        )


class RefRepo(_Repo):
    async def get(self, card_key: str) -> dict[str, Any] | None:
        return (
            await self.conn.execute(select(t.message_refs.c.ref).where(t.message_refs.c.card_key == card_key))
        ).scalar_one_or_none()

    async def put(self, card_key: str, platform: str, ref: dict[str, Any]) -> None:
        stmt = pg_insert(t.message_refs).values(card_key=card_key, account_id=self.account_id, platform=platform,
                                                ref=ref)
        await self.conn.execute(
            stmt.on_conflict_do_update(index_elements=["card_key"], set_={"ref": stmt.excluded.ref,
                                                                          "updated_at": func.now()})
        )
