"""All configuration, from environment variables (pydantic-settings). Secrets are SecretStr so
they never print in logs or reprs."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # server
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(3978, alias="PORT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: str = Field("json", alias="FLOWPILOT_LOG_FORMAT")  # json | text

    # database
    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    data_dir: Path = Field(Path(".flowpilot"), alias="FLOWPILOT_DATA_DIR")
    db_pool_size: int = Field(10, alias="FLOWPILOT_DB_POOL_SIZE")

    # people
    admins: str = Field("", alias="FLOWPILOT_ADMINS")  # comma-separated platform user ids
    secret_key: SecretStr | None = Field(None, alias="FLOWPILOT_SECRET_KEY")

    # workers
    workers: int = Field(2, alias="FLOWPILOT_WORKERS")
    job_lease_seconds: int = Field(120, alias="FLOWPILOT_JOB_LEASE_SECONDS")
    job_max_attempts: int = Field(6, alias="FLOWPILOT_JOB_MAX_ATTEMPTS")
    outbox_max_attempts: int = Field(12, alias="FLOWPILOT_OUTBOX_MAX_ATTEMPTS")
    poll_seconds: float = Field(2.0, alias="FLOWPILOT_POLL_SECONDS")
    backoff_base_seconds: float = Field(1.0, alias="FLOWPILOT_BACKOFF_BASE_SECONDS")
    backoff_cap_seconds: float = Field(60.0, alias="FLOWPILOT_BACKOFF_CAP_SECONDS")

    # AI
    anthropic_api_key: SecretStr | None = Field(None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, alias="ANTHROPIC_BASE_URL")
    ai_request_timeout_seconds: float = Field(60.0, alias="AI_REQUEST_TIMEOUT_SECONDS")
    main_conversation_model: str = Field("claude-sonnet-4-6", alias="MAIN_CONVERSATION_MODEL")
    fact_synthesis_model: str = Field("claude-haiku-4-5-20251001", alias="FACT_SYNTHESIS_MODEL")
    resolution_note_model: str = Field("claude-sonnet-4-6", alias="RESOLUTION_NOTE_MODEL")
    escalation_package_model: str = Field("claude-sonnet-4-6", alias="ESCALATION_PACKAGE_MODEL")
    escalation_summary_model: str = Field("claude-sonnet-4-6", alias="ESCALATION_SUMMARY_MODEL")
    status_update_model: str = Field("claude-sonnet-4-6", alias="STATUS_UPDATE_MODEL")
    audience_variant_model: str = Field("claude-haiku-4-5-20251001", alias="AUDIENCE_VARIANT_MODEL")
    escalation_summary_timeout_seconds: float = Field(30.0, alias="ESCALATION_SUMMARY_TIMEOUT_SECONDS")

    # escalation
    escalation_reping_minutes: float = Field(10.0, alias="ESCALATION_REPING_MINUTES")
    escalation_reping_max: int = Field(3, alias="ESCALATION_REPING_MAX")
    ticker_seconds: float = Field(30.0, alias="FLOWPILOT_TICKER_SECONDS")  # escalation metrics refresh

    # Slack
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(None, alias="SLACK_API_URL")

    # Teams
    microsoft_app_id: str | None = Field(None, alias="MICROSOFT_APP_ID")
    microsoft_app_password: SecretStr | None = Field(None, alias="MICROSOFT_APP_PASSWORD")
    microsoft_app_type: str = Field("SingleTenant", alias="MICROSOFT_APP_TYPE")
    microsoft_app_tenant_id: str | None = Field(None, alias="MICROSOFT_APP_TENANT_ID")
    teams_openid_metadata_url: str | None = Field(None, alias="TEAMS_OPENID_METADATA_URL")
    teams_token_issuer: str | None = Field(None, alias="TEAMS_TOKEN_ISSUER")
    teams_token_endpoint: str | None = Field(None, alias="TEAMS_TOKEN_ENDPOINT")
    teams_insecure_dev: bool = Field(False, alias="FLOWPILOT_TEAMS_INSECURE_DEV")

    # ConnectWise
    cw_client_id: str | None = Field(None, alias="CW_CLIENT_ID")
    cw_site_url: str | None = Field(None, alias="CW_SITE_URL")
    cw_company_id: str | None = Field(None, alias="CW_COMPANY_ID")
    cw_public_key: SecretStr | None = Field(None, alias="CW_PUBLIC_KEY")
    cw_private_key: SecretStr | None = Field(None, alias="CW_PRIVATE_KEY")
    cw_api_version: str = Field("2025.16", alias="CW_API_VERSION")
    cw_resolved_status_id: int | None = Field(None, alias="CW_RESOLVED_STATUS_ID")
    cw_escalated_status_id: int | None = Field(None, alias="CW_ESCALATED_STATUS_ID")

    def model_ids(self) -> dict[str, str]:
        return {
            "chat": self.main_conversation_model,
            "fact_synthesis": self.fact_synthesis_model,
            "resolution_note": self.resolution_note_model,
            "escalation_package": self.escalation_package_model,
            "escalation_summary": self.escalation_summary_model,
            "status_update": self.status_update_model,
            "audience_variant": self.audience_variant_model,
        }

    def admin_ids(self) -> set[str]:
        return {a.strip() for a in self.admins.split(",") if a.strip()}
