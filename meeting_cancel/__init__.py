"""Cancel Outlook meetings on behalf of their organizers, safely: the domain behind the functions."""
