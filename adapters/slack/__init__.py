"""The Slack channel adapter: bolt on our aiohttp server, Block Kit rendering, the outbox sender.
Start at mount.py; docs/slack.md explains the modes."""
