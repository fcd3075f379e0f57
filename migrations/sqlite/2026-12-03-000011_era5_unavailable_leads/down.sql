DROP TABLE weather_unavailable_leads;
