"""Pengawalan: escorts of logistics and ballot boxes (see DESIGN.md, "Escorts (pengawalan)")."""
