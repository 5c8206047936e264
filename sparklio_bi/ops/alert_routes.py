"""Alertmanager's configuration from its template (monitoring/alertmanager.yml) and the ALERT_*
settings: Alertmanager 0.25 expands no environment variable itself, and a secret written into a
file in the repository would leak. The template is parsed first and each string substituted in
place, so a password holding YAML's special characters stays one string."""
from __future__ import annotations

from pathlib import Path
from string import Template

import yaml

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError

TEMPLATE = config.PROJECT_ROOT / "monitoring" / "alertmanager.yml"
REQUIRED = ("ALERT_EMAIL_TO", "ALERT_EMAIL_FROM", "ALERT_SMTP_SMARTHOST", "ALERT_WEBHOOK_URL")


class AlertRoutesError(ExpectedError):
    """A receiver's setting is missing, or the template names a variable the settings lack."""


def values(settings: config.Settings) -> dict[str, str]:
    """The template's variables, from the settings (empty strings for unset optional ones)."""
    found = {"ALERT_EMAIL_TO": settings.alert_email_to, "ALERT_EMAIL_FROM": settings.alert_email_from,
             "ALERT_SMTP_SMARTHOST": settings.alert_smtp_smarthost, "ALERT_WEBHOOK_URL": settings.alert_webhook_url,
             "ALERT_SMTP_USERNAME": settings.alert_smtp_username, "ALERT_SMTP_PASSWORD": settings.alert_smtp_password,
             "ALERT_SMTP_REQUIRE_TLS": "true" if settings.alert_smtp_require_tls else "false",
             "ALERT_HEARTBEAT_URL": settings.alert_heartbeat_url,
             "ALERT_SLACK_WEBHOOK_URL": settings.alert_slack_webhook_url,
             "SPARKLIO_TIMEZONE": settings.timezone}  # office hours are the reporting time zone's
    missing = [name for name in REQUIRED if not found[name]]
    if missing:
        raise AlertRoutesError(f"Alertmanager's receivers need {', '.join(missing)} in the environment")
    return {name: value or "" for name, value in found.items()}


def render(settings: config.Settings, template: Path = TEMPLATE) -> str:
    """The template with every ${ALERT_...} replaced; a lone "true"/"false" becomes a boolean."""
    mapping = values(settings)

    def fill(node):
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        if isinstance(node, str) and "$" in node:
            try:
                text = Template(node).substitute(mapping)
            except KeyError as exc:
                raise AlertRoutesError(f"{template.name} names ${{{exc.args[0]}}}, which is no setting it may read") from None
            return {"true": True, "false": False}.get(text, text) if node.startswith("${") else text
        return node

    return yaml.safe_dump(_without_unset_urls(fill(yaml.safe_load(template.read_text()))), sort_keys=False)


def _without_unset_urls(doc: dict) -> dict:
    """Each receiver without the configs whose URL rendered empty (an optional setting left unset):
    Alertmanager refuses an empty URL, and a receiver left with none drops what it is routed."""
    for receiver in doc.get("receivers", []):
        for key in [key for key in receiver if key.endswith("_configs")]:
            receiver[key] = [item for item in receiver[key] if all(item.get(name) != "" for name in ("url", "api_url"))]
            if not receiver[key]:
                del receiver[key]
    return doc


def write(settings: config.Settings, output: Path, template: Path = TEMPLATE) -> Path:
    """Render into `output`, readable by its owner only (it holds the SMTP password)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.touch(mode=0o600, exist_ok=True)
    output.chmod(0o600)
    output.write_text(render(settings, template))
    return output
