"""OASIS CAP 1.2 for early warnings: model, writer, safe reader, vocabulary, Atom feed.

Pure Python over ``xmlschema`` and ``defusedxml``: no Django model is imported here, so
the package serves the early-warning app's services, tasks and views alike
(``docs/cap.md``). Entry points:

- ``mapping.warning_to_alert`` + ``build.alert_to_xml``: publish one warning version;
- ``parse.parse_alert`` + ``mapping.alert_to_received``: import an upstream message;
- ``feed.warnings_atom_feed``: the index feed of active warnings.
"""
