"""A sample app: settings kept on the device and synced through Amazon Cognito Sync."""

from notes_app.settings_sync import SettingsSync, SyncGaveUp

__all__ = ["SettingsSync", "SyncGaveUp"]
