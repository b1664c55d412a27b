from portal_common.settings import PortalSettings, load_settings


class AuthSettings(PortalSettings):
    auth_database_url: str
    clients_url: str = ""
    # Failed logins allowed per username and per address within the window.
    login_failures_per_username: int = 5
    login_failures_per_address: int = 20
    login_failure_window_seconds: int = 300


def get_settings() -> AuthSettings:
    return load_settings(AuthSettings)
